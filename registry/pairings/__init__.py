"""Pairings (结对关系) between East and Sichuan units, and the programmes they belong to."""
