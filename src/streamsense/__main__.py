from streamsense.cli.main import main

main()
