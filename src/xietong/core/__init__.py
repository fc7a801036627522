"""The kernel: database, errors, events, storage, i18n and small utilities. Imports no domain."""
