"""geodata."""
