"""Talking to OpenAI-compatible servers: the client with our own retries and API-key lookup, shared by the LLM
judge and the openai generator. Imports only rater.core."""
