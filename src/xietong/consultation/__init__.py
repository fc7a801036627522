"""Remote consultation (远程会诊): a request from a lower-level doctor, triaged by an
upper-level centre, answered by its experts with a signed report (docs/consultation.md)."""
