"""Hand models (the open anny hand, MANO) behind one interface."""
