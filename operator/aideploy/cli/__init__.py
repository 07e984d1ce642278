"""The kubectl plugin (`kubectl aideploy ...`): the people's side of the procedure."""
