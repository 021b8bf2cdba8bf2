"""HTTP endpoints other than the inference pipeline: models, embeddings, stored responses, admin, metrics."""
