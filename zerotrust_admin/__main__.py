from zerotrust_admin.cli.entry import main

main()
