"""The support team's pages: the agent desk and the admin page, sign-in and accounts."""
