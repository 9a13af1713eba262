"""The recipe's sections, one typed module each (pydantic, one `Strict` base).

Importing this package stays cheap: no stage, no service, no pyarrow.
"""
