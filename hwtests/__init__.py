"""CallBox hwtests layer."""
