"""ALB data plane: HTTP/1.1 listeners on raw asyncio streams, pooled keep-alive to targets."""
