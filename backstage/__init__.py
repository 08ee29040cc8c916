"""The backstage: Command Center's own web pages and REST API (issue 19), beside the chat.

Same layer as plugins/: it reaches state only through services (never storage/). ``app.py`` holds
the application, the sign-in and the protections every route shares; each feature's routes live in
their own module with a ``setup(backstage, ...)`` that bot.py calls.
"""
