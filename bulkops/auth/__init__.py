"""Who is calling: admin users, integrations, their tokens and the ACL."""
