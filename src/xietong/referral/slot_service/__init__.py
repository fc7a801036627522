"""The appointment slots' use cases (号源), split by concern; ``xietong.referral.slots`` is
the one module other code imports (docs/slots.md)."""
