"""The SSEAUN reference node (grpc.aio + aiohttp + SQLite)."""
