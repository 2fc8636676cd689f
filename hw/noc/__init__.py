"""Scoville on-chip network: wormhole VC routers with credits, a 2-D mesh and its interfaces."""
