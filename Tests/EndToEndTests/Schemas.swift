import ORAClient

/// The API's types, as Docs/openapi.yaml names them.
typealias Schemas = Components.Schemas
