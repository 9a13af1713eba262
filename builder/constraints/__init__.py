"""Instruction constraints: IFEval checkers, a prompt detector, mechanical application (a library)."""
