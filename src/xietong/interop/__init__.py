"""Interoperability entry points (DIMSE, later HL7 v2 and FHIR): protocol edges that call
the domain services, as the web layer does for HTTP. No domain imports them."""
