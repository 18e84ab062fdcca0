"""Labour cooperation placements (劳务协作): one record per person and placement."""
