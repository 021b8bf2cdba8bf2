"""Google Gemini (the Gemini Developer API): generateContent and embeddings."""
