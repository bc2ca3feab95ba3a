"""Users, units, roles and sign-in."""
