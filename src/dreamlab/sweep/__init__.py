"""`dreamlab sweep`: the cartesian product of override values, each a normal run, under one sweep directory."""
