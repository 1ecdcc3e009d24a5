"""Building the images the testbed runs: node images for kind and the project image."""
