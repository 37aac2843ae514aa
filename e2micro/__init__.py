"""What train/, convert/ and bench/ share: atomic publishing, the project's error types, the CLIs'
error and signal handling. Depends on nothing else in the project."""
