"""Feedback collection: candidate responses, simulated annotators, the AI judge, pair labelling."""
