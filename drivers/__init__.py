"""CallBox drivers layer."""
