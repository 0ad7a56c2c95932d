"""Who is speaking: speaker embeddings (numpy GE2E encoder), online clustering into S1, S2, ..., summaries."""
