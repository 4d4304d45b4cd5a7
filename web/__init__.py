"""The workbench (工作台): Chinese pages for a supervision office, a street or a grid leader."""
