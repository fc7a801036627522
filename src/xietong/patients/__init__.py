"""The master patient index: identifiers, registration and matching, merges, and the access
rules (institution links, grants, break-glass) through which every chart is opened."""
