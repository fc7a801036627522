"""Conversations about a subject (a consultation, later a referral, an imaging read, a live
lecture): ordered messages, attachments and read positions (docs/messaging.md)."""
