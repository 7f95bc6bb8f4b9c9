from ccmirror.cli import main

main()
