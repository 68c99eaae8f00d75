"""A second, tiny application: each order joined with its customer's name by key."""
