"""A scripted session against the embedded sandbox, printed as a chat transcript (`python -m demo`)."""
