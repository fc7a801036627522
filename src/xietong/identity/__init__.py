"""Identity: accounts, roles, passwords, sessions, tokens and the second factor."""
