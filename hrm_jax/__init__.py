"""HRM-Text in JAX/Flax NNX: model/ (architectures, Hugging Face format), data/ (sources,
tokenizers, packing), train/ (loop, optimizer, sharding, checkpoints), generate.py (KV-cached
decoding) and eval/ (the paper's benchmarks)."""
