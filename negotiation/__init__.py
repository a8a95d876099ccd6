"""A multi-agent negotiation sandbox for rehearsing and studying partnership deals."""
