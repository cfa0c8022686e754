"""What the tests build and run beside the code under test: datasets, databases, live servers, decoders.

May import anything of the project; nothing outside `tests/` imports it.
"""
