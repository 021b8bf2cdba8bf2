"""AWS Bedrock: the Converse API and embeddings, signed with SigV4."""
