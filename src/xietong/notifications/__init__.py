"""In-app notifications: who has to act on what (docs/notifications.md)."""
