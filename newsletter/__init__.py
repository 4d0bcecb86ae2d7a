"""The newsletter: signup service, subscriber store, mailer, author commands.

The store keeps one thing about a reader, the email address; see ARCHITECTURE.md.
"""
