"""PCam reader, demo data, augmentation and batching."""
