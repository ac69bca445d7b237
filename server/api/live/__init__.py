"""Live GraphQL over graphql-transport-ws: one execution per distinct subscription, shared by its subscribers."""
