"""Training dynamics, the maths only: NTK Gram matrices and their velocity (ntk.py), weight
interpolation and the error barrier (barrier.py)."""
