"""Citations in answers: parsed, resolved to a document and place, and verified."""
