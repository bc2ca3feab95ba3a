"""Class sign-in on shared tablets: roster of name cards, 4-digit PINs, 换人."""
