"""ghsim's simulator, one concern a module; tests/ghsim/ghsim.py is its command line."""
