"""Equivariant building blocks, one concept per file; each checks its equivariance and exports itself."""
import warnings

# e2cnn 0.2.3 indexes with uint8 masks when it samples bases; harmless, but noisy on every build.
warnings.filterwarnings("ignore", message="indexing with dtype torch.uint8", category=UserWarning)
