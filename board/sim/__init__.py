"""CallBox board/sim layer."""
