"""Access: who is acting (principal), who may see what (policies, scopes) and the audit log."""
