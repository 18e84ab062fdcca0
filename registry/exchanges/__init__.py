"""Cadres and professionals exchanged (人才交流), in both directions."""
