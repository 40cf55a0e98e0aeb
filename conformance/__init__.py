"""The SSEAUN conformance suite: black-box checks of any node, and test vectors."""
