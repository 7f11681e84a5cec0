"""NoProp-CT and NoProp-FM (paper Sec. 2.3): one network over continuous time t, read by integrating an ODE."""
